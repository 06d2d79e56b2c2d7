"""Temporal activities. Each context operation (`db.insert`, `http.request`, …) is one activity."""
