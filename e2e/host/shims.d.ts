// react-dom ships no types and @types/react-dom is not a dependency; the host
// only calls createRoot(...).render(...).
declare module 'react-dom';
declare module 'react-dom/client';
