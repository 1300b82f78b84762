# bench/lib/verdict.sh: the one verdict line every bench script prints per
# target, sourced by the scripts (bench/run runs only bench/*.sh). The
# format, which bench/run collects and bench/README.md describes:
#
#   PASS|FAIL <what>: gatehouse <value>, <peer> <value>, ratio <r>, target <op> <t>
#   PASS|FAIL <what>: gatehouse <value>, target <op> <t>
#
# <op> is >= or <=. A figure that could not be measured ("n/a", empty)
# is a FAIL: a target nobody measured is not met.

# verdict_ratio WHAT GATEHOUSE PEER_NAME PEER OP TARGET: the ratio
# GATEHOUSE/PEER against TARGET.
verdict_ratio() {
	awk -v what="$1" -v g="$2" -v pn="$3" -v p="$4" -v op="$5" -v t="$6" 'BEGIN {
		ok = (g ~ /^[0-9.eE+-]+$/ && p ~ /^[0-9.eE+-]+$/ && p + 0 > 0)
		r = ok ? g / p : 0
		# Compared as g against t*p, not g/p against t: the quotient rounds
		# (0.54/0.36 is 1.5000000000000002 in floating point, a FAIL of
		# "<= 1.50" for figures exactly at the target), while the product
		# by the targets 0.5 and 2 is exact (by 1.2 and 1.5, within an ulp).
		# verdict_test.sh has the cases.
		pass = ok && ((op == ">=" && g + 0 >= t * p) || (op == "<=" && g + 0 <= t * p))
		printf "%s %s: gatehouse %s, %s %s, ratio %s, target %s %.2f\n", pass ? "PASS" : "FAIL", what, g, pn, p,
			ok ? sprintf("%.2f", r) : "n/a", op, t
	}'
}

# verdict_value WHAT GATEHOUSE OP TARGET: the figure itself against TARGET.
verdict_value() {
	awk -v what="$1" -v g="$2" -v op="$3" -v t="$4" 'BEGIN {
		ok = (g ~ /^[0-9.eE+-]+$/)
		pass = ok && ((op == ">=" && g + 0 >= t + 0) || (op == "<=" && g + 0 <= t + 0))
		printf "%s %s: gatehouse %s, target %s %s\n", pass ? "PASS" : "FAIL", what, ok ? g : "n/a", op, t
	}'
}
