"""Side effects on a filesystem tree. (The full Host protocol arrives with `apply`.)"""
