// Package mitfmt holds the integer and counted-string encodings, the bounded
// file reader and the FILE: name resolution that MIT's ccache and keytab
// formats share (MIT krb5 doc/formats/).
package mitfmt
