"""Generated Tortoise migrations (`tortoise makemigrations`); reviewed, never edited after release."""
