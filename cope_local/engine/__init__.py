"""CoPe decoding on llama.cpp: one base model, two adapter contexts."""
