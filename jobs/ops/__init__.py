"""What operators read: the Prometheus exposition (``/metrics`` on the web, a small
listener in the worker) and the engines' canary results."""
