// Package kdcclient talks to a KDC: AS exchange with a long-term key, TGS
// exchange, S4U2Self and S4U2Proxy (MS-SFU 3.1.5, with the RBCD bit), the
// forwarded TGT, over TCP (RFC 4120 §7.2.2) through a Dialer that the embedded
// lab points at loopback. gokrb5's client has no S4U and signs TGS-REQs before
// the padata is final (notes/gokrb5.md), so the lab's tiers and load
// generator use this one.
package kdcclient
