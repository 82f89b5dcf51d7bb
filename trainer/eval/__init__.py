"""`cope eval`'s runner: one test user's work (user), a shard of users on this machine (runner) or
on Ray (ray_fan_out), and the run's shared task adapter (shared_tam)."""
