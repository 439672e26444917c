// Package kerr is the lab's typed Kerberos failure: an RFC 4120 §7.5.9 error
// code, a short machine reason (for events and explain), text, and the
// NTSTATUS Windows logs with it (MS-ERREF 2.3), carried to clients in
// KERB-EXT-ERROR e-data (MS-KILE 2.2.1). Every layer returns *Error.
package kerr
