package dcerpc

import "fmt"

// Fault is a call's failure status, sent in a fault PDU (C706 appendix E,
// MS-RPCE 2.2.2.12 and 3.3.1.5.7). A Handler returns one to fail a call.
type Fault uint32

// The fault statuses this server sends.
const (
	FaultAccessDenied    Fault = 0x00000005 // nca_s_fault_access_denied (ERROR_ACCESS_DENIED)
	FaultNDR             Fault = 0x000006f7 // nca_s_fault_ndr (RPC_X_BAD_STUB_DATA)
	FaultSecPkgError     Fault = 0x00000721 // nca_s_fault_sec_pkg_error
	FaultContextMismatch Fault = 0x1c00001a // nca_s_fault_context_mismatch (a bad context handle)
	FaultOpRangeError    Fault = 0x1c010002 // nca_op_rng_error (no such opnum)
	FaultUnknownIf       Fault = 0x1c010003 // nca_unk_if
	FaultProtoError      Fault = 0x1c01000b // nca_proto_error
	FaultInvalidTag      Fault = 0x1c000006 // nca_s_fault_invalid_tag (a union level the server does not know)
)

var faultNames = map[Fault]string{
	FaultAccessDenied: "nca_s_fault_access_denied", FaultNDR: "nca_s_fault_ndr", FaultSecPkgError: "nca_s_fault_sec_pkg_error",
	FaultContextMismatch: "nca_s_fault_context_mismatch", FaultOpRangeError: "nca_op_rng_error", FaultUnknownIf: "nca_unk_if",
	FaultProtoError: "nca_proto_error", FaultInvalidTag: "nca_s_fault_invalid_tag",
}

func (f Fault) String() string {
	if n, ok := faultNames[f]; ok {
		return fmt.Sprintf("%s (0x%08x)", n, uint32(f))
	}
	return fmt.Sprintf("fault 0x%08x", uint32(f))
}

func (f Fault) Error() string { return "dcerpc fault " + f.String() }
