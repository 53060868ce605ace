"""Entry points and the composition root: web, worker, scheduler, run (all-in-one), CLI."""
