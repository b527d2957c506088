/// A whole Fledge fleet on one machine (filled in by the end-to-end issue).
public enum LocalFleet {}
