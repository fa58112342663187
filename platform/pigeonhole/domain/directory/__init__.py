"""The directory (issue #6): contacts, departments, custom fields and search.

A package may name a contact or a department as its recipient; the directory
decides who is active (a deactivated contact can no longer pick up) and which
custom fields each screen carries.
"""
