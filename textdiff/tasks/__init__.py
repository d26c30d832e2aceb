"""What a trained row is used for beyond sampling: infilling and controllable generation (family-agnostic)."""
