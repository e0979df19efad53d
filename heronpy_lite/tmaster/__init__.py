"""The topology master process: stmgr registry, physical plan, activation."""
