// Package tsql is the SQL tier's T-SQL engine: the lab's small, fixed query
// surface (SELECT with TOP, WHERE, ORDER BY and COUNT over the lab's views,
// SET, USE, WAITFOR DELAY, and SQL Server's own refusals for the rest). It
// lexes and parses a batch (lexer.go, parse.go), types each expression the
// way SQL Server types its result columns, and runs the statements against a
// Session (the connection's login, database and the objects it may read),
// writing results to an Output. Errors carry SQL Server's numbers, states,
// classes and texts (102/156 syntax, 207 column, 208 object, 229 permission,
// 2812 procedure, 4104 binding, 8120 grouping, 40517 not supported).
//
// It knows nothing about sockets or logins: package sqltier builds the
// Session from a connection and turns the Output into TDS tokens.
package tsql
