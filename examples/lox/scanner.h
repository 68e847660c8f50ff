/* examples/lox/scanner.h: Lox tokens and the scanner, which turns source
 * text into tokens on demand. Tokens point into the source; the scanner
 * allocates nothing. */
#ifndef LOX_SCANNER_H
#define LOX_SCANNER_H

typedef enum token_kind {
	/* single-character tokens */
	T_LEFT_PAREN,
	T_RIGHT_PAREN,
	T_LEFT_BRACE,
	T_RIGHT_BRACE,
	T_COMMA,
	T_DOT,
	T_MINUS,
	T_PLUS,
	T_SEMICOLON,
	T_SLASH,
	T_STAR,
	/* one or two characters */
	T_BANG,
	T_BANG_EQUAL,
	T_EQUAL,
	T_EQUAL_EQUAL,
	T_GREATER,
	T_GREATER_EQUAL,
	T_LESS,
	T_LESS_EQUAL,
	/* literals */
	T_IDENTIFIER,
	T_STRING,
	T_NUMBER,
	/* keywords */
	T_AND,
	T_CLASS,
	T_ELSE,
	T_FALSE,
	T_FOR,
	T_FUN,
	T_IF,
	T_NIL,
	T_OR,
	T_PRINT,
	T_RETURN,
	T_SUPER,
	T_THIS,
	T_TRUE,
	T_VAR,
	T_WHILE,
	T_ERROR,
	T_EOF,
	T_KINDS
} token_kind;

typedef struct token {
	token_kind kind;
	const char *start; /* for T_ERROR: the message */
	int len;
	int line;
} token;

void scanner_init(const char *source);
token scan_token(void);

#endif /* LOX_SCANNER_H */
