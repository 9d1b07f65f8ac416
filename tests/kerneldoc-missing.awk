#!/usr/bin/awk -f
# SPDX-License-Identifier: GPL-2.0
#
# Lists every non-static function defined in the given C files (Linux
# style: the name at the start of a line, the body's "{" alone on a line)
# that is not directly preceded by a kerneldoc "/** ... */" block, and
# exits 1 if there is one. kernel-doc itself only checks comments that
# exist, so this is what keeps every function the module shares
# documented. Usage: awk -f tests/kerneldoc-missing.awk kmod/*.c

FNR == 1 { in_doc = 0; doc_end = -1; cand = 0 }

# a kerneldoc block: remember the line it ends on
/^\/\*\*/ { in_doc = 1 }
in_doc && /\*\// { in_doc = 0; doc_end = FNR; next }
in_doc { next }

cand && /^\{$/ {
	if (!cand_doc) {
		printf "%s:%d: %s: no kerneldoc comment\n", FILENAME, cand_line, cand_name
		missing++
	}
	cand = 0
	next
}
cand && /;[ \t]*$/ { cand = 0 }

/^[A-Za-z_]/ && !/^static / && !/^(typedef|extern|struct [A-Za-z_0-9]+ \{|union|enum)/ && /\(/ {
	name = $0
	sub(/\(.*/, "", name)
	sub(/.*[ *]/, "", name)
	cand = 1
	cand_line = FNR
	cand_name = name "()"
	cand_doc = (doc_end == FNR - 1)
	if ($0 ~ /;[ \t]*$/)
		cand = 0
}

END {
	if (missing) {
		printf "%d non-static functions lack a kerneldoc comment\n", missing
		exit 1
	}
}
