"""``dsc-grasp export`` (not implemented yet)."""


def register(sub):
    p = sub.add_parser("export", help="(not implemented yet)")
    p.set_defaults(func=lambda args: print("not implemented yet") or 2)
