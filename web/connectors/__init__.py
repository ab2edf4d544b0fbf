"""One connector per shop platform behind one Protocol (arrives with shop intake)."""
