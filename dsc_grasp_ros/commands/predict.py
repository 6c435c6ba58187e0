"""``dsc-grasp predict`` (not implemented yet)."""


def register(sub):
    p = sub.add_parser("predict", help="(not implemented yet)")
    p.set_defaults(func=lambda args: print("not implemented yet") or 2)
