"""Tables and figures regenerated from result files, beside the paper's numbers."""
