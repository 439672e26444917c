// AD-IF-RELEVANT / AD-WIN2K-PAC containers (RFC 4120 §5.2.6.1, MS-PAC 4).
package kmsg

import (
	"errors"
	"slices"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/adtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// TicketSignatureInput returns the bytes the ticket signature covers (MS-PAC
// 2.8.2, "Ticket Signature"): the DER EncTicketPart in which the ad-data of
// every AD-WIN2K-PAC inside AD-IF-RELEVANT is replaced by a single zero byte
// (as Heimdal/Samba do; etp itself is not modified). ErrNoPAC when there is none.
func TicketSignatureInput(etp messages.EncTicketPart) ([]byte, error) {
	ad := slices.Clone(etp.AuthorizationData)
	found := false
	for i, e := range ad {
		if e.ADType != adtype.ADIfRelevant {
			continue
		}
		inner, _ := DecodeAuthorizationData(e.ADData)
		hit := false
		for j := range inner {
			if inner[j].ADType == adtype.ADWin2KPAC {
				inner[j].ADData, hit = []byte{0}, true
			}
		}
		if !hit {
			continue
		}
		ad[i].ADData, found = MarshalAuthorizationData(inner), true
	}
	if !found {
		return nil, ErrNoPAC
	}
	etp.AuthorizationData = ad
	return MarshalEncTicketPart(etp)
}

// PACAuthorizationData wraps a PAC for a ticket: AD-IF-RELEVANT (1) holding
// AD-WIN2K-PAC (128) (MS-PAC 4, RFC 4120 5.2.6.1).
func PACAuthorizationData(pacBytes []byte) (types.AuthorizationData, error) {
	inner := MarshalAuthorizationData(types.AuthorizationData{{ADType: adtype.ADWin2KPAC, ADData: pacBytes}})
	return types.AuthorizationData{{ADType: adtype.ADIfRelevant, ADData: inner}}, nil
}

// SetPAC returns ad with the PAC first (as Windows and Heimdal place it; gokrb5
// looks only at the first element of each AD-IF-RELEVANT) and every other PAC
// removed, e.g. the TGT's PAC copied into a service ticket (RFC 4120 3.3.3).
func SetPAC(ad types.AuthorizationData, pacBytes []byte) (types.AuthorizationData, error) {
	out, err := PACAuthorizationData(pacBytes)
	if err != nil {
		return nil, err
	}
	for _, e := range ad {
		if e.ADType == adtype.ADWin2KPAC {
			continue
		}
		if e.ADType == adtype.ADIfRelevant {
			inner, _ := DecodeAuthorizationData(e.ADData)
			kept := slices.DeleteFunc(slices.Clone(inner), func(x types.AuthorizationDataEntry) bool { return x.ADType == adtype.ADWin2KPAC })
			if len(kept) < len(inner) {
				if len(kept) == 0 {
					continue
				}
				e.ADData = MarshalAuthorizationData(kept)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// FindPAC returns the first AD-WIN2K-PAC inside an AD-IF-RELEVANT element.
// Undecodable elements are skipped.
func FindPAC(ad types.AuthorizationData) ([]byte, bool) {
	s := SummarizeAD(ad)
	return s.PAC, s.PAC != nil
}

// FAST's authorization data (RFC 6113 §5.4.1.1, §5.4.2).
const (
	ADFxFastArmor int32 = 71 // marks a ticket or authenticator made for armor only
	ADFxFastUsed  int32 = 72 // says the request must have come through FAST
)

// ADSummary is what the KDC reads from authorization data in one pass:
// the PAC (inside AD-IF-RELEVANT) and FAST's markers (anywhere).
type ADSummary struct {
	PAC                 []byte
	FastArmor, FastUsed bool
}

// SummarizeAD reads ad once, AD-IF-RELEVANT's contents included.
func SummarizeAD(ad types.AuthorizationData) ADSummary {
	var s ADSummary
	var walk func(types.AuthorizationData, bool)
	walk = func(ad types.AuthorizationData, inner bool) {
		for _, e := range ad {
			switch e.ADType {
			case ADFxFastArmor:
				s.FastArmor = true
			case ADFxFastUsed:
				s.FastUsed = true
			case adtype.ADWin2KPAC:
				if inner && s.PAC == nil {
					s.PAC = e.ADData
				}
			case adtype.ADIfRelevant:
				if !inner {
					in, _ := DecodeAuthorizationData(e.ADData)
					walk(in, true)
				}
			}
		}
	}
	walk(ad, false)
	return s
}

// DecodeAuthorizationData decodes AuthorizationData (the content of AD-IF-RELEVANT); ok is
// false, and ad nil, unless b is exactly one well-formed value.
func DecodeAuthorizationData(b []byte) (types.AuthorizationData, bool) {
	if ad, ok := FastAuthorizationData(b); ok {
		return ad, true
	}
	var ad types.AuthorizationData
	var rest []byte
	err := SafeUnmarshal(func() (err error) { rest, err = asn1.Unmarshal(b, &ad); return err })
	if err != nil || len(rest) != 0 {
		return nil, false
	}
	return ad, true
}

// ErrNoPAC: the authorization data holds no PAC.
var ErrNoPAC = errors.New("no PAC in the authorization data")
