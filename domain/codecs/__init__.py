"""Image encoders: pure functions from pixels to the payloads of SPICE image types."""
