"""Video generation jobs (docs/video.md): the routes, the service that creates and reads jobs,
the ``video_jobs`` table's queries, the poller that drives jobs to their end under a lease,
and their billing."""
