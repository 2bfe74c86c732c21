"""Members, regions (branches, offices, address rules) and who may see whom."""
