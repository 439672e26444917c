package conformance

import "testing"

// unittest counts every failing subtest; the table counts tests.
func TestParseCountsTestsNotSubtests(t *testing.T) {
	out := `test_a (samba.tests.krb5.s4u_tests.S4UKerberosTests.test_a) ... ok
test_b (samba.tests.krb5.s4u_tests.S4UKerberosTests.test_b) ... FAIL
test_c (samba.tests.krb5.s4u_tests.S4UKerberosTests.test_c) ... ERROR

======================================================================
FAIL: test_b (samba.tests.krb5.s4u_tests.S4UKerberosTests.test_b) (checksum=6)
----------------------------------------------------------------------
Traceback (most recent call last):
  File "x.py", line 1, in test_b
AssertionError: 41 not found in (60,)

======================================================================
FAIL: test_b (samba.tests.krb5.s4u_tests.S4UKerberosTests.test_b) (checksum=7)
----------------------------------------------------------------------
AssertionError: 41 not found in (60,)

======================================================================
ERROR: test_c (samba.tests.krb5.s4u_tests.S4UKerberosTests.test_c)
----------------------------------------------------------------------
KeyError: 'No such element'

----------------------------------------------------------------------
Ran 4 tests in 2.414s

FAILED (failures=2, errors=1, skipped=1)
`
	r := Result{Causes: map[string]int{}}
	parse(&r, out)
	if r.Passed != 1 || r.Failed != 1 || r.Errors != 1 || r.Skipped != 1 {
		t.Errorf("passed %d failed %d errors %d skipped %d, want 1 1 1 1", r.Passed, r.Failed, r.Errors, r.Skipped)
	}
	if r.Causes["AssertionError: 41 not found in (60,)"] != 2 {
		t.Errorf("causes %v", r.Causes)
	}
}
