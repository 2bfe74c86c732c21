"""Loyalty-programme service (知音卡 / PhoenixMiles model)."""
