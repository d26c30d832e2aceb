"""Forward corruption processes and their reverse-step maths."""
