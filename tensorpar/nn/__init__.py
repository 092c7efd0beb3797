"""Neural-network layers built on tensorpar's primitives (work in progress)."""
