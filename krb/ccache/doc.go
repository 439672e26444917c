// Package ccache reads and writes MIT credential caches of the FILE type
// (MIT krb5 doc/formats/ccache_file_format.rst, versions 1 to 4; version 4 is
// written), as klist and kinit do. gokrb5 reads caches without bounds checks
// and cannot write them (notes/gokrb5.md §3(e)); this codec does both, never
// panics, and bounds every count and length. ToGokrb5 hands a cache to gokrb5
// and go-mssqldb's krb5 provider.
package ccache
