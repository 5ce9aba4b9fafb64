"""Built-in action providers: the code that does an action's work once a worker claims its job.

One module per provider; `registry` maps each built-in action type to its provider.
"""
