"""The locker vocabulary and its rules: hierarchy, banks, packages, custody."""
