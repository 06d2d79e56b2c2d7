"""The example's handlers : collected with `handlers_from`."""
