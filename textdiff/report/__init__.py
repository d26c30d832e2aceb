"""What the report says, as pure functions of metrics: the verdict, claims and provenance checks."""
