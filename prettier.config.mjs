// Prettier: the project's long-line style (tables of facts read better on one line), double quotes, trailing commas.
export default { printWidth: 140 };
