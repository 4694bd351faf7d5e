// Replaced at bundle time would be nicer; one constant is enough while there is one package.
export const VERSION = '0.1.0';
