"""A job queue on FastAPI, PostgreSQL and Redis: the API enqueues, `python -m jobs.worker` computes."""
