/** The translate daemon: a node's export directory → PacketFS chunks and namespace versions. */
export { startTranslator, type Translator, type TranslatorOptions, type TranslatorStats } from './translator.js';
