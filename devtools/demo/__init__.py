"""The embedded one-command demo (`credit-scorer stream demo`) and its live view."""
