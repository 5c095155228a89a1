// Entry point only: the commands live in Commands.swift (closures here would be main-actor
// isolated, which traps on the router's threads).
WeftCommand.runMain()
