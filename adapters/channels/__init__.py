"""One runner per channel kind beyond main, display, inputs and cursor."""
