"""Run every checker: python run_all.py  (UMBRA_VECTORS=<dir> to point elsewhere)."""
import importlib, sys
MODS = ["check_padding", "check_safety_number", "check_x3dh", "check_pqxdh", "check_sealed_sender", "check_content_payload",
        "check_wire", "check_group", "check_group_state", "check_ratchet", "check_pairwise", "check_session_pickle", "check_braids", "check_ephemeral", "check_decode_errors", "check_opaque", "check_backup", "check_attachment", "check_link", "check_kt"]
ok = True
for m in MODS:
    ok = bool(importlib.import_module(m).main()) and ok
print("ALL VECTORS REPRODUCED" if ok else "SOME VECTORS FAILED")
sys.exit(0 if ok else 1)
