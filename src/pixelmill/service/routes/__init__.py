"""The API's routers, one per resource: jobs, on-demand images (:mod:`pixelmill.service.ondemand`),
health."""
