"""Use cases. Plain functions taking a JobContext and ids; each is safe to run twice."""
