"""``dsc-grasp evaluate`` (not implemented yet)."""


def register(sub):
    p = sub.add_parser("evaluate", help="(not implemented yet)")
    p.set_defaults(func=lambda args: print("not implemented yet") or 2)
