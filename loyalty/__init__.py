"""The Django project: settings, URLs and the HTTP plumbing every app shares."""
