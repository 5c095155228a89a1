print("v")
