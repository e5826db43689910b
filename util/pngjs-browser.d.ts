/** pngjs's browser build (a browserify bundle of the same sources): the PNG class, as from 'pngjs'. */
declare module 'pngjs/browser.js' {
  import type { PNG } from 'pngjs';
  const pngjs: { PNG: typeof PNG };
  export default pngjs;
}
