"""Business logic. Services never touch `request`; views call them and commit."""
