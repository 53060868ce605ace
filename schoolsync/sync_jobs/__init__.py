"""The job runtime: broker and middleware, thin actors, services (use cases), scheduler, replay."""
