"""The example's handlers (the seed's barrel export): collected with `handlers_from`."""
