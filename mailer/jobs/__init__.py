"""RQ job functions. They take ids or plain values, reload rows, and run inside the app
context that `worker.py` pushes."""
