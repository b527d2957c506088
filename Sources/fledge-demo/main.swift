import LocalFleet
print("fledge-demo: not built yet")
